"""contracts/openapi.yaml is the gateway's contract: it must be valid OpenAPI 3.1 and say
exactly what the gateway serves, no more and no less. No server is needed."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from gateway import service
from gateway.service import GatewayService
from minqing_kernel.errors import Invalid, Unauthorized
from minqing_kernel.web import status_problem

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "contracts" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_JSON = "application/problem+json"
# Served without a token, so they carry `security: []`.
PUBLIC = {("POST", "/v1/auth/token"), ("GET", "/v1/openapi.json"), ("GET", "/metrics"),
          ("GET", "/health/live"), ("GET", "/health/ready"),
          # accounts: a number proves itself with its SMS code instead of a token
          ("POST", "/v1/auth/sms-codes"), ("POST", "/v1/auth/sign-up"),
          ("POST", "/v1/auth/code-sign-in"), ("POST", "/v1/auth/password-reset")}
# They parse no input and check no token: nothing a client sends can make them answer 4xx.
NO_CLIENT_ERRORS = {("GET", "/metrics"), ("GET", "/health/live"), ("GET", "/v1/openapi.json"),
                    ("GET", "/health/ready")}
# /health/ready answers 503 with its own {status, checks} body, which probes read.
NOT_A_PROBLEM = {("GET", "/health/ready", "503")}
OPEN311 = "/open311/v2/"
OPEN311_ERRORS = "#/components/schemas/Open311Errors"


@pytest.fixture(scope="module")
def doc() -> dict:
    return yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def v1_operations(doc: dict):
    """The API's own operations: Open311's (/open311/v2/) follow the GeoReport v2 spec
    instead (its errors, its api_key, its form bodies); they are checked below."""
    for method, path, op in operations(doc):
        if not path.startswith(OPEN311):
            yield method, path, op


def deref(doc: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        node = pointer(doc, node["$ref"])
    return node


def pointer(doc: dict, ref: str):
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        else:
            assert part in node, f"{ref} does not resolve: no {part!r}"
            node = node[part]
    return node


def walk(node, where: str = "#"):
    """(location, node) for every dict in the document."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{where}/{i}")


def gateway_routes() -> dict[tuple[str, str], str]:
    """(METHOD, /openapi/{path}) -> method name, for every nameko HTTP entrypoint."""
    routes = {}
    for name in dir(GatewayService):
        for entrypoint in getattr(getattr(GatewayService, name), "nameko_entrypoints", ()) or ():
            if not hasattr(entrypoint, "url"):
                continue  # an RPC or event entrypoint, not HTTP
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", entrypoint.url)
            for method in entrypoint.method.split(","):
                routes[(method.strip().upper(), path)] = name
    return routes


def test_the_contract_is_a_valid_openapi_3_1_document(doc):
    assert doc["openapi"].startswith("3.1.")
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_the_contract_documents_every_gateway_route_and_no_other():
    documented = {(method, path) for method, path, _ in operations(
        yaml.safe_load(CONTRACT.read_text(encoding="utf-8")))}
    served = set(gateway_routes())

    undocumented = sorted(served - documented)
    not_served = sorted(documented - served)
    assert not undocumented and not not_served, (
        f"served by the gateway but missing from contracts/openapi.yaml: {undocumented}; "
        f"in contracts/openapi.yaml but not served by the gateway: {not_served}")


def test_each_operation_id_is_unique_and_names_the_gateway_method(doc):
    routes = gateway_routes()
    ids = [op.get("operationId") for _, _, op in operations(doc)]
    assert all(ids), "every operation needs an operationId"
    assert len(ids) == len(set(ids)), f"duplicate operationIds: {sorted(ids)}"
    for method, path, op in operations(doc):
        assert op["operationId"] == routes.get((method, path)), (
            f"{method} {path}: operationId {op['operationId']!r} should be the gateway "
            f"method {routes.get((method, path))!r}")


def test_each_operation_has_a_tag_and_a_summary(doc):
    tags = {t["name"] for t in doc["tags"]}
    for method, path, op in operations(doc):
        assert op.get("summary"), f"{method} {path} has no summary"
        assert op.get("tags") and set(op["tags"]) <= tags, f"{method} {path}: bad tags"


def test_only_sign_in_the_document_and_ops_probes_are_served_without_a_token(doc):
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert doc["security"] == [{"bearerAuth": []}]
    public = {(method, path) for method, path, op in v1_operations(doc)
              if op.get("security") == []}
    assert public == PUBLIC


def test_each_operation_that_takes_input_answers_client_errors_with_a_problem(doc):
    for method, path, op in v1_operations(doc):
        if (method, path) in NO_CLIENT_ERRORS:
            continue
        problems = [status for status, response in op["responses"].items()
                    if status.startswith("4") and deref(doc, response).get("content", {})
                    .get(PROBLEM_JSON, {}).get("schema", {}).get("$ref") == PROBLEM_REF]
        assert problems, f"{method} {path} documents no 4xx problem response"


def test_every_error_response_is_a_problem_json_body(doc):
    for method, path, op in v1_operations(doc):
        for status, response in op["responses"].items():
            if status[0] not in "45" or (method, path, status) in NOT_A_PROBLEM:
                continue
            content = deref(doc, response).get("content", {})
            assert list(content) == [PROBLEM_JSON], f"{method} {path} {status}: {list(content)}"
            assert content[PROBLEM_JSON]["schema"]["$ref"] == PROBLEM_REF, (
                f"{method} {path} {status} does not use the Problem schema")


def test_operations_that_need_a_token_document_401_and_public_ones_only_for_sign_in(doc):
    for method, path, op in v1_operations(doc):
        needs_token = op.get("security", doc["security"]) != []
        assert ("401" in op["responses"]) == (needs_token or path == "/v1/auth/token"), (
            f"{method} {path}: a signed-in route answers 401, a public one does not")


def test_the_problem_schema_describes_the_bodies_the_code_produces(doc):
    schema = doc["components"]["schemas"]["Problem"]
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    bodies = [
        Invalid("The report has invalid fields: location.lat.",
                "爆料中以下字段有误：location.lat。",
                errors=[{"field": "location.lat", "message": "Must be at most 90."}])
        .to_problem("/v1/reports"),
        Unauthorized("Sign in first.", "请先登录。", code="token-missing").to_problem(),
        json.loads(status_problem(404).get_data(as_text=True)),
    ]
    for body in bodies:
        assert not [e.message for e in validator.iter_errors(body)], body
        assert set(body) <= set(schema["properties"]), f"undocumented members in {body}"


def test_every_request_body_refuses_unknown_fields_and_has_an_example(doc):
    for method, path, op in v1_operations(doc):
        if "requestBody" not in op:
            continue
        media = op["requestBody"]["content"]
        assert list(media) == ["application/json"], f"{method} {path}: JSON bodies only"
        schema = deref(doc, media["application/json"]["schema"])
        assert schema.get("additionalProperties") is False, (
            f"{method} {path}: the marshmallow schema rejects unknown fields")
        assert "example" in media["application/json"], f"{method} {path} has no example"


def test_every_reference_resolves(doc):
    refs = [(where, node["$ref"]) for where, node in walk(doc) if "$ref" in node]
    assert refs
    for where, ref in refs:
        assert pointer(doc, ref) is not None, f"{where}: {ref} does not resolve"


def test_every_example_satisfies_its_schema(doc):
    checked = 0
    for where, node in walk(doc):
        if "schema" not in node or not ({"example", "examples"} & set(node)):
            continue
        if "in" in node:
            continue  # a parameter: its examples sit inside its schema
        examples = ([node["example"]] if "example" in node else
                    [e["value"] for e in node["examples"].values()])
        # The schema sits under the document root, so '#/components/...' resolves.
        validator = Draft202012Validator({"components": doc["components"],
                                          "allOf": [node["schema"]]},
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        for example in examples:
            errors = [e.message for e in validator.iter_errors(example)]
            assert not errors, f"{where}: example does not fit its schema: {errors}"
            checked += 1
    assert checked >= 5


def test_every_documented_problem_type_is_one_the_code_raises(doc):
    source = "\n".join(p.read_text(encoding="utf-8") for folder in
                       ("gateway", "minqing_kernel", "services")
                       for p in (ROOT / folder).rglob("*.py") if "tests" not in p.parts)
    raised = set(re.findall(r"""code\s*=\s*["']([a-z0-9-]+)["']""", source))
    raised |= {f"http-{status}" for status in (404, 405, 500)}
    documented = {value.removeprefix("/problems/")
                  for _, node in walk(doc) if isinstance(node.get("type"), dict)
                  for value in node["type"].get("enum", []) if str(value).startswith("/problems/")}
    assert documented, "responses name the problem types they can carry"
    assert documented <= raised, f"no code raises: {sorted(documented - raised)}"


def test_the_gateway_serves_this_document_as_json(doc):
    service.openapi_document.cache_clear()
    assert json.loads(service.openapi_document()) == doc


def test_open311_reads_are_public_and_filing_needs_a_partners_api_key(doc):
    # The partner's key is a form field of the POST, as Open311 has it: OpenAPI's security
    # schemes cannot name a form field, so the body schema requires it instead (a scheme
    # "in: query" made schemathesis's ignored_auth check see the POST succeed without
    # its credential, the key being in the body all along).
    assert "open311ApiKey" not in doc["components"]["securitySchemes"]
    open311 = [(m, p, op) for m, p, op in operations(doc) if p.startswith(OPEN311)]
    assert len(open311) == 8
    for method, path, op in open311:
        assert op.get("security") == [], f"{method} {path}"
        assert "401" not in op["responses"], f"{method} {path}: Open311 refuses with 403"
        if method == "POST":
            assert "403" in op["responses"]
            form = deref(doc, op["requestBody"]["content"][
                "application/x-www-form-urlencoded"]["schema"])
            assert "api_key" in form["required"]


def test_open311_errors_are_the_specs_error_list_in_json_and_xml(doc):
    for method, path, op in operations(doc):
        if not path.startswith(OPEN311):
            continue
        assert path.endswith(".{fmt}"), f"{path}: every Open311 resource takes a format"
        for status, response in op["responses"].items():
            content = deref(doc, response).get("content", {})
            assert {"application/json", "text/xml"} <= set(content), f"{method} {path}"
            if status[0] in "45":
                assert content["application/json"]["schema"]["$ref"] == OPEN311_ERRORS, (
                    f"{method} {path} {status}")


def test_the_upload_types_and_sizes_the_document_allows_are_intakes(doc):
    # (upload content types were a free string the API refused but for ten: issue #12)
    from services.intake.domain import MEDIA
    request = doc["components"]["schemas"]["UploadRequest"]
    assert set(request["properties"]["content_type"]["enum"]) == set(MEDIA)
    assert request["properties"]["size"]["maximum"] == max(m[2] for m in MEDIA.values())
    (small,) = request["allOf"]
    assert set(small["if"]["properties"]["content_type"]["enum"]) == {
        kind for kind, m in MEDIA.items() if m[2] == small["then"]["properties"]["size"][
            "maximum"]}
    assert {m[2] for m in MEDIA.values()} == {small["then"]["properties"]["size"]["maximum"],
                                              request["properties"]["size"]["maximum"]}


def test_an_idempotency_key_outside_the_documents_length_is_refused_not_cut(doc):
    from gateway.submission import MAX_KEY, submission_id
    from minqing_kernel.errors import BadRequest
    declared = next(p for p in doc["paths"]["/v1/reports"]["post"]["parameters"]
                    if p["name"] == "Idempotency-Key")["schema"]
    assert (declared["minLength"], declared["maxLength"]) == (1, MAX_KEY)
    actor = {"id": "resident-zhang"}
    assert submission_id(actor, "k" * MAX_KEY) == submission_id(actor, "k" * MAX_KEY)
    for key in ("", "k" * (MAX_KEY + 1)):
        with pytest.raises(BadRequest) as refused:
            submission_id(actor, key)
        assert refused.value.code == "bad-idempotency-key"
